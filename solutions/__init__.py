"""Reference implementations; `pytest --solutions` runs the tests against them."""
