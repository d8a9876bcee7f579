"""`chatflow dev` catches mail: with no CHATFLOW_SMTP_URL (and no email service's key), an SMTP
server of its own on this machine takes every email the email channel sends, so a newcomer
sees a flow's emails (on the landing page, in `chatflow chat`) without an account.

The settings go into the config's environment, where this process's email channel reads them,
and into the process environment, which the worker (started after) inherits; stopping the
catcher takes them out of the process environment again.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import MutableMapping

from chatflow.domain.config import Settings
from providers.email.catcher import MailCatcher

DEV_FROM = "chatflow dev <dev@chatflow.localhost>"
# Any of these set: the developer's own mail setup is used, and nothing is caught.
CONFIGURED = ("CHATFLOW_SMTP_URL", "MAILGUN_API_KEY")


class DevMail(MailCatcher):
    """The catcher, with the settings that point the email channel at it."""

    def __init__(self, host: str, env: MutableMapping[str, str], settings: Settings | None = None) -> None:
        super().__init__(host)
        self.env = env
        self.settings = settings
        self.set: list[str] = []

    async def start(self) -> None:
        await super().start()
        wanted = {
            "CHATFLOW_SMTP_URL": self.url,
            "CHATFLOW_EMAIL_FROM": DEV_FROM,
            # Signs the unsubscribe links: the web app and the worker share it this way.
            "CHATFLOW_EMAIL_SECRET": secrets.token_urlsafe(24),
        }
        for name, value in wanted.items():
            if not self.env.get(name):
                self.env[name] = value
                self.set.append(name)
        if self.settings is not None:
            self.settings.environment = {**self.settings.environment, **{name: self.env[name] for name in self.set}}

    async def stop(self) -> None:
        for name in self.set:
            self.env.pop(name, None)
        self.set.clear()
        await super().stop()


async def catch_mail(
    host: str, settings: Settings | None = None, env: MutableMapping[str, str] | None = None
) -> DevMail | None:
    """A running catcher the email channel now sends to (with `settings`, the config's), or None
    when mail is configured."""
    env = os.environ if env is None else env
    configured = settings.environment if settings is not None else env
    if any(configured.get(name) or env.get(name) for name in CONFIGURED):
        return None
    catcher = DevMail(host, env, settings)
    await catcher.start()
    return catcher
