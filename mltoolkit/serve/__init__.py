"""``mltk serve RUN``: any technique's trained model behind one HTTP API (docs/serve.md).

``app`` builds the ASGI app over a Predictor, ``inputs`` reads request bodies by input kind, ``batcher``
groups concurrent requests into one ``predict`` call, ``outputs`` turns records into JSON, ``guard`` holds
the token, body limit, log line and metrics, ``server`` loads a run and runs uvicorn, ``cli`` is the command.
Only ``cli`` is imported by ``mltk``; FastAPI and uvicorn load when the command runs.
"""
