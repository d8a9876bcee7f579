"""Sending through an SMTP server (aiosmtplib): TLS or STARTTLS, authentication, and the
server's answer as a permanent or retryable send error.

SMTP says which by its reply code: 5xx is permanent (no such mailbox, refused), 4xx is
transient (greylisting, mailbox full, try later). A connection that fails, drops or times out
is retryable too: the server may be restarting.
"""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from chatflow.domain.errors import PermanentSendError, RetryableSendError
from providers.email.settings import SmtpServer

TIMEOUT = 20.0  # seconds for each step of the SMTP exchange


def _error(code: int, what: str) -> PermanentSendError | RetryableSendError:
    reason = f"the SMTP server refused {what} ({code})"
    return (
        PermanentSendError(reason, code=str(code)) if 500 <= code < 600 else RetryableSendError(reason, code=str(code))
    )


class SmtpSender:
    def __init__(self, server: SmtpServer, *, timeout: float = TIMEOUT) -> None:
        self.server = server
        self.timeout = timeout

    async def send(self, email: EmailMessage) -> None:
        """Hand `email` to the server; PermanentSendError or RetryableSendError when it does not take it."""
        server = self.server
        try:
            await aiosmtplib.send(
                email,
                hostname=server.host,
                port=server.port,
                username=server.username or None,
                password=server.password or None,
                use_tls=server.tls,
                start_tls=server.starttls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refused.code for refused in error.recipients]
            raise _error(max(codes, default=550), "the recipient") from error
        except aiosmtplib.SMTPAuthenticationError as error:
            # Wrong credentials stay wrong: no retry will fix the config.
            raise PermanentSendError(
                f"the SMTP server refused the login ({error.code})", code=str(error.code)
            ) from error
        except aiosmtplib.SMTPNotSupported as error:
            # STARTTLS required (a password off this machine) and not offered: a config matter.
            raise PermanentSendError(f"the SMTP server {server} cannot do what is required: {error}") from error
        except aiosmtplib.SMTPResponseException as error:
            # SMTPSenderRefused, SMTPDataError, SMTPHeloError...: the server's own answer.
            raise _error(error.code, "the message") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            # Could not connect, disconnected, timed out, TLS failed: maybe better later.
            raise RetryableSendError(
                f"cannot reach the SMTP server {server}: {error}", code="smtp_connection"
            ) from error
