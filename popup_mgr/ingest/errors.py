"""What the ingest path answers when it does not count an event."""


class EventError(ValueError):
    """A beacon, click or postback that is rejected; the message is the reason (4xx)."""


class IngestUnavailable(RuntimeError):
    """The event could not be committed (timeout, database error); nothing was acknowledged."""


class ClickNotConfirmed(IngestUnavailable):
    """The click was queued but its commit was not confirmed in time (or failed). redirect_url
    carries the queued click id, so a visitor sent on still matches the click if it lands."""

    def __init__(self, message, redirect_url):
        super().__init__(message)
        self.redirect_url = redirect_url


class PostbackRejected(EventError):
    """Wrong secret or caller not allowed (403)."""
