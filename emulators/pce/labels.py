"""Labels as the PCE holds them: the label table, renames, dimensions and their events."""

import uuid

from emulators.pce.events import USER, EventWriter, api_action, resource_change
from emulators.pce.state import LabelMode
from emulators.pce.wire import Json


class LabelTable(EventWriter):
    """The org's labels (`labels`: href -> label) and the events their changes write."""

    _dimension_names: dict[str, str]

    def _init_labels(self) -> None:
        self._dimension_names = {}

    def set_label_mode(self, mode: LabelMode) -> None:
        if mode not in ("inline", "href"):
            raise ValueError(f"label mode must be 'inline' or 'href', not {mode!r}")
        self.label_mode = mode

    def add_label(self, key: str, value: str) -> Json:
        """The label object for key/value, created in the label table if missing (`label.create`)."""
        with self._lock:
            for label in self.labels.values():
                if label["key"] == key and label["value"] == value:
                    return label
            if self._estate is not None:
                created = self._estate.label(key, value)
            else:
                numbers = [
                    int(href.rsplit("/", 1)[1]) for href in self.labels if href.rsplit("/", 1)[1].isdigit()
                ]
                href = f"/orgs/{self.org_id}/labels/{max(numbers, default=0) + 1}"
                created = {"href": href, "key": key, "value": value}
                self.labels[href] = created
            made = {"key": {"before": None, "after": key}, "value": {"before": None, "after": value}}
            self._write("label.create", USER, [resource_change("create", {"label": dict(created)}, made)])
            return created

    def rename_label(self, href: str, value: str) -> Json:
        """Change a label's value everywhere it is used (`label.update`, naming no workload)."""
        with self._lock:
            old = self.labels[href]
            renamed = {**old, "value": value}
            self.labels[href] = renamed
            for workload in self.workloads:
                labels = workload.get("labels") or ()
                if any(label.get("href") == href for label in labels):
                    workload["labels"] = [renamed if label.get("href") == href else label for label in labels]
            changes = {"value": {"before": old["value"], "after": value}}
            action = api_action("PUT", href, 204)
            return self._write(
                "label.update",
                USER,
                [resource_change("update", {"label": renamed}, changes)],
                action=action,
            )

    def update_label_dimension(self, key: str, display_name: str) -> Json:
        """Rename a label dimension's display name (`label_dimension.update`); no tag changes."""
        with self._lock:
            before = self._dimension_names.get(key, key.title())
            self._dimension_names[key] = display_name
            dimension = {
                "href": f"/orgs/{self.org_id}/label_dimensions/{uuid.uuid5(uuid.NAMESPACE_URL, key)}",
                "key": key,
                "display_name": display_name,
            }
            changes = {"display_name": {"before": before, "after": display_name}}
            return self._write(
                "label_dimension.update",
                USER,
                [resource_change("update", {"label_dimension": dimension}, changes)],
            )

    @staticmethod
    def _label_object(label: Json) -> Json:
        return {
            "created_at": "2026-01-05T10:00:00.000000Z",
            "updated_at": "2026-01-05T10:00:00.000000Z",
            "created_by": {"href": "/users/1"},
            "updated_by": {"href": "/users/1"},
            "deleted": False,
            "external_data_set": None,
            "external_data_reference": None,
            **label,
        }
