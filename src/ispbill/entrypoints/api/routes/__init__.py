"""One router per capability; ``app.create_app`` includes them all."""
