"""Flows: one module per use case, where the rules of each request live.

A route reads its input (path, query, body, the signed-in member) and calls one flow
function; the flow checks what the chain would refuse, relays, stores and builds the public
answer. One shape for all: ``async def use_case(services, member, ...inputs) -> PublicModel``,
raising the typed problems of :mod:`api.errors`. Listings also take the request and response,
whose paging headers they set. Routers hold only the HTTP surface (paths, status codes,
documented problems); nothing here imports a router.
"""
