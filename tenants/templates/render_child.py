"""The template renderer's child process: Jinja's sandbox behind an address-space and CPU limit.

Run as a file (`python -I render_child.py`), never imported by the gateway: it imports only the
standard library and jinja2, so it stays small. One JSON request per line on stdin, one JSON answer
per line on stdout. The first line it writes says it is ready. Limits:
- address space (RLIMIT_AS): a template that allocates past it gets MemoryError, answered as over
  budget, and the process exits so the next render starts from a clean heap;
- CPU (RLIMIT_CPU, moved before each render): a render that spins past it is killed by SIGXCPU;
- output: rendering streams, and stops as soon as the output passes the request's bound;
- `*` and `**` are checked before they run, so "x" * 10**9 or 9**9**9 fail at once.
The parent bounds wall time too, and kills and replaces a child that does not answer in time.
"""

import json
import math
import resource
import sys
from typing import Any

MEMORY_BYTES = int(sys.argv[1]) if len(sys.argv) > 1 else 256 * 1024 * 1024


class OverBudget(Exception):
    pass


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _limit_cpu(seconds: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (math.ceil(used + seconds), hard))


def main() -> None:
    _limit_memory()
    import jinja2
    from jinja2.runtime import Context
    from jinja2.sandbox import SandboxedEnvironment

    max_output = [0]

    class BoundedSandbox(SandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
            if operator == "*":
                for seq, times in ((left, right), (right, left)):
                    if (
                        isinstance(seq, (str, list, tuple))
                        and isinstance(times, int)
                        and len(seq) * times > max_output[0]
                    ):
                        raise OverBudget("a repetition is larger than the output budget")
            if (
                operator == "**"
                and isinstance(right, int)
                and abs(right) > 1000
                and isinstance(left, int)
                and abs(left) > 1
            ):
                raise OverBudget("an exponent is too large")
            return super().call_binop(context, operator, left, right)

    envs = {
        "text": BoundedSandbox(autoescape=False, undefined=jinja2.StrictUndefined),
        "html": BoundedSandbox(autoescape=True, undefined=jinja2.StrictUndefined),
    }
    compiled: dict[tuple[bool, str], jinja2.Template] = {}

    def render(field: str, source: str, values: dict[str, Any], budget: int) -> str:
        key = (field == "html", source)
        template = compiled.get(key)
        if template is None:
            if len(compiled) > 512:
                compiled.clear()
            template = compiled[key] = envs["html" if field == "html" else "text"].from_string(source)
        parts, size = [], 0
        for chunk in template.generate(**values):
            size += len(chunk)
            if size > budget:
                raise OverBudget(f"the output is larger than {max_output[0]} characters")
            parts.append(chunk)
        return "".join(parts)

    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        exit_after = False
        try:
            request = json.loads(line)
            max_output[0] = budget = int(request["max_output"])
            _limit_cpu(float(request["cpu_seconds"]))
            rendered: dict[str, str | None] = {}
            for field, source in request["fields"].items():
                if source:
                    text = render(field, source, request["values"], budget)
                    rendered[field] = text
                    budget -= len(text)
                else:
                    rendered[field] = None
            answer: dict[str, Any] = {"ok": rendered}
        except OverBudget as exc:
            answer = {"error": "budget", "message": str(exc)}
        except (MemoryError, RecursionError) as exc:
            answer = {
                "error": "budget",
                "message": "the render is over its memory budget"
                if isinstance(exc, MemoryError)
                else "the template nests too deeply",
            }
            exit_after = isinstance(exc, MemoryError)
        except Exception as exc:  # the sandbox's refusal, a missing variable, an error inside the template
            answer = {"error": "refused", "message": f"{type(exc).__name__}: {exc}"[:300]}
        try:
            out.write(json.dumps({**answer, "exiting": exit_after}, ensure_ascii=False) + "\n")
            out.flush()
        except MemoryError:
            out.write('{"error": "budget", "message": "the render is over its memory budget", "exiting": true}\n')
            out.flush()
            exit_after = True
        if exit_after:
            sys.exit(0)


if __name__ == "__main__":
    main()
