import threading

import pytest
from werkzeug.exceptions import ServiceUnavailable

from flaskr.limits import Slots


def test_slots_run_work_up_to_their_count():
    slots = Slots(2, "testing", wait=0.01)
    with slots.held(), slots.held():
        with pytest.raises(ServiceUnavailable) as refused:
            with slots.held():
                pass
    response = refused.value.get_response()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "busy testing" in refused.value.description
    # Every slot was given back, also by the refused request.
    with slots.held(), slots.held():
        pass


def test_a_waiting_request_gets_the_next_free_slot():
    slots = Slots(1, "testing", wait=5)
    entered, release = threading.Event(), threading.Event()

    def hold():
        with slots.held():
            entered.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    entered.wait(5)
    threading.Timer(0.05, release.set).start()
    with slots.held():
        got_it = True
    holder.join()
    assert got_it


def test_a_failing_block_gives_its_slot_back():
    slots = Slots(1, "testing", wait=0.01)
    with pytest.raises(RuntimeError):
        with slots.held():
            raise RuntimeError("boom")
    with slots.held():
        pass
