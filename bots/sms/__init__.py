"""The SMS adapter: Twilio webhooks in, Twilio Messages API out.

Modules: ``config`` (SmsConfig), ``client`` (httpx under the twilio client),
``webhook`` (signature, parsing, keywords, statuses), ``routes`` (Starlette routes),
``media`` (MMS download and deletion), ``transport`` (SmsTransport), ``errors`` (Twilio codes
to delivery errors), ``segments`` (encoding, segment count, splitting).
"""
