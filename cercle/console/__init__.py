"""The staff console: a web app at ``/staff/`` where admins and facilitators run their groups
from a browser, signed in with a passkey. It calls the same core functions as the CLI."""
