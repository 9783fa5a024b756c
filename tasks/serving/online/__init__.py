"""Online inference (`loopline api`): the model behind an alias over HTTP.

rows: a request's records typed and checked against the nightly contract's row rules;
batcher: concurrent requests queued and scored together through the one scoring path;
holder: the served version and the challenger, followed through their aliases (hot swap);
canary: the sticky split of ids; store: scored rows into the predictions store's online
partition; metrics: Prometheus; service: one request through all of them; app: FastAPI.
"""
