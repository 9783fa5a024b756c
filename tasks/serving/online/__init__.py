"""Online inference (`loopline api`): the model behind an alias over HTTP.

Requests are checked row by row against the nightly contract (rows), queued and scored together
through the one scoring path (batcher), by the version the alias names when they arrive
(holder: hot swap, shadow, canary), and written to the predictions store's online partition
(store); app wires them into FastAPI, metrics counts what happens.
"""
