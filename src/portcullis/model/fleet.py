"""What an agent pushes to the fleet service beside a report, so the service can re-match images when advisories
change: each scanned image's package inventory, and the containers its engine runs (which images are deployed)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from portcullis.model.vuln import OsRelease, Package


class ImageInventory(BaseModel):
    """One image's installed packages, as the scan that produced the report found them."""

    image: str = Field(description="the image as the report names it (its reference)")
    image_id: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", description="the image id (config digest)")
    os_release: OsRelease | None = None
    packages: list[Package] = Field(default_factory=list)


class DeployedContainer(BaseModel):
    """One container on the pushing agent's engine."""

    id: str = Field(pattern=r"^[0-9a-f]{12,64}$")
    name: str
    image: str = Field("", description="the image as the container was created from it (Config.Image)")
    image_id: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    running: bool
