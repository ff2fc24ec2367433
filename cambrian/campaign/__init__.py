"""The campaign engine: the runtime that runs campaigns on top of the plugin contract.

``engine`` (the :class:`~cambrian.campaign.engine.Campaign` loop: budgets, approvals, resume),
``coordinator`` (the LangGraph graph), ``checkpoint`` (the graph's coordination state, read
without the graph), ``supervisor`` (slot policies), ``standings`` (the leaderboard rule) and
``rundir`` (the run directory's lock). It imports ``cambrian.core`` and nothing of plugins,
execution, architectures or scaling; ``cambrian.core`` does not import it.
"""
