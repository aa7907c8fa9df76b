"""The on-call dashboard: a Textual app over the same core the CLI uses.

A leaf: nothing in sentinel imports it, and it talks to the workspace only through
`sentinel.tui.data` (reads) and `sentinel.store.triage` (changes, each one a timeline
entry). Every database call runs in a thread worker, and log text is always shown as
plain `Text`, never as markup.
"""
