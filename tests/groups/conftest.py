from tests.groups.live import make_node

__all__ = ["make_node"]
