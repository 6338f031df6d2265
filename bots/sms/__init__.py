"""The SMS adapter: Twilio webhooks in, Twilio Messages API out.

Modules: ``config`` (SmsConfig), ``client`` (httpx under the twilio client),
``webhook`` (signature, parsing, keywords, statuses), ``routes`` (Starlette routes),
``intake`` (a received message through the inbox to the core's ``accept``),
``media`` (MMS download and deletion), ``transport`` (SmsTransport), ``errors`` (Twilio codes
to delivery errors), ``segments`` (encoding, segment count, splitting).
"""
