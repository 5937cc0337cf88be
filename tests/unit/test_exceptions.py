import pytest

from omniman import exceptions as exc


@pytest.mark.parametrize(
    "cls",
    [exc.ValidationError, exc.SessionError, exc.CommitError, exc.IdempotencyError, exc.IssueResolveError, exc.DirectiveError, exc.InvalidTransition],
)
def test_every_error_has_code_message_context(cls):
    error = cls("stale_rev", "changed", {"current_rev": 3})
    assert isinstance(error, exc.OmnimanError)
    assert (error.code, error.message, error.context) == ("stale_rev", "changed", {"current_rev": 3})
    assert error.as_dict() == {"code": "stale_rev", "message": "changed", "context": {"current_rev": 3}}
    assert "stale_rev" in str(error)


def test_default_message_and_context():
    error = exc.CommitError("empty_session")
    assert error.message == exc.MESSAGES["empty_session"]
    assert error.context == {}
    assert exc.OmnimanError("made_up").message == "Made up."
