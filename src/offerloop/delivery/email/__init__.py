"""The e-mail channel: compose (RFC 5322 message), dkim (optional signing), transport (SMTP or Maildir)."""
