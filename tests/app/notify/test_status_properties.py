"""Properties of the status precedence (app/notify/status.py), over any order and any duplication of callbacks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.notify.status import RANK, TERMINAL, advances

FORWARD = ["queued", "sent", "delivered", "read"]
EVERY = [*RANK, *TERMINAL]


def fold(start: str, arrivals: list[str]) -> tuple[str, list[str]]:
    """What apply_status does to an attempt: the final status and the transitions that were applied."""
    current, applied = start, []
    for status in arrivals:
        if advances(current, status):
            current = status
            applied.append(status)
    return current, applied


@given(st.lists(st.sampled_from(FORWARD), min_size=1, max_size=12))
def test_forward_statuses_in_any_order_end_at_the_highest(arrivals: list[str]) -> None:
    final, applied = fold("sending", arrivals)
    assert final == max(arrivals, key=RANK.__getitem__)
    assert len(applied) == len(set(applied)), "one state change per real transition, however often it arrives"
    assert [RANK[s] for s in applied] == sorted({RANK[s] for s in applied}), "never backwards"


@given(st.lists(st.sampled_from(EVERY), max_size=12), st.data())
def test_duplicates_change_nothing(arrivals: list[str], data: st.DataObject) -> None:
    if not arrivals:
        return
    repeated = data.draw(st.sampled_from(arrivals))
    at = data.draw(st.integers(0, len(arrivals)))
    # A duplicate arriving right after its original is a no-op; anywhere later it is still never applied twice.
    with_duplicate = [*arrivals[:at], repeated, *arrivals[at:]]
    final, applied = fold("sending", with_duplicate)
    assert len(applied) == len(set(applied))
    assert final == fold("sending", sorted(set(with_duplicate), key=with_duplicate.index))[0]


@given(st.sampled_from([*TERMINAL, "read"]), st.lists(st.sampled_from(EVERY), max_size=8))
def test_terminal_states_and_read_absorb_everything(end: str, later: list[str]) -> None:
    assert fold(end, later) == (end, [])


@given(st.lists(st.sampled_from(EVERY), max_size=12))
def test_a_failure_is_final_unless_read_came_first(arrivals: list[str]) -> None:
    final, applied = fold("sending", arrivals)
    first_end = next((s for s in arrivals if s in TERMINAL or s == "read"), None)
    if first_end is not None:
        assert final == first_end, "the first terminal status (or read) wins; later ones are only recorded"
        assert applied[-1] == first_end
    else:
        assert final == max(["sending", *arrivals], key=RANK.__getitem__)  # the first of the highest rank
