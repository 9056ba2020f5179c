"""The tape and its interpreters: one format (``program``), replayed, differentiated twice, compiled."""
