"""ORM tables. Importing this package registers every table on `Base.metadata`."""

from models.base_model import Base
from models.tenant_model import Tenant
from models.user_model import User

__all__ = ["Base", "Tenant", "User"]
