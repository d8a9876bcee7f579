"""Channel adapters: how chatflow talks to Twilio, Meta WhatsApp Cloud and the local console."""
