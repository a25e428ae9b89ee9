"""What the human decides: the decision log with undo, the naming session, contact sheets."""
