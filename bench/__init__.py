"""segcore's benchmark suite: ``python -m bench --size small|medium|large``."""
