"""The teacher's side over HTTP: REST API, dashboard, live feed and ``/metrics`` (aiohttp).

``create_app(settings)`` in ``bot.web.app`` builds the whole application.
"""
