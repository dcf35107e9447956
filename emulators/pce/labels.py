"""Labels as the PCE holds them: the label table, renames, dimensions, label groups and their events.

Label groups live in two policy versions (docs/protocols.md#pce-label-groups): `draft` holds
edits (each writes `label_group.create`, `.update` or `.delete`) and `active` what was last
provisioned (`provision` copies draft to active and writes `sec_policy.create`). Setting
`label_groups` (the active version) directly writes no events, like the constructor.
"""

import uuid
from collections.abc import Iterable

from emulators.pce.events import USER, EventWriter, api_action, resource_change
from emulators.pce.state import LabelMode
from emulators.pce.wire import Json


class LabelTable(EventWriter):
    """The org's labels (`labels`: href -> label) and the events their changes write."""

    _dimension_names: dict[str, str]
    label_groups: dict[str, Json]  # href -> the active (provisioned) group
    draft_label_groups: dict[str, Json]  # href -> the draft group
    _label_group_serial: int

    def _init_labels(self) -> None:
        self._dimension_names = {}
        self.label_groups = {}
        self.draft_label_groups = {}
        self._label_group_serial = 0

    def set_label_group(
        self,
        name: str,
        *,
        labels: Iterable[str] = (),
        sub_groups: Iterable[str] = (),
        key: str = "app",
        href: str | None = None,
    ) -> Json:
        """Create or edit a draft label group (`label_group.create` or `.update`); members by href."""
        with self._lock:
            if href is None:
                found = [group for group in self.draft_label_groups.values() if group["name"] == name]
                if found:
                    href = found[0]["href"]
                else:
                    self._label_group_serial += 1
                    href = f"/orgs/{self.org_id}/sec_policy/draft/label_groups/{uuid.UUID(int=self._label_group_serial)}"
            before = self.draft_label_groups.get(href)
            group = {
                "href": href,
                "key": key,
                "name": name,
                "labels": [{"href": label} for label in labels],
                "sub_groups": [{"href": sub} for sub in sub_groups],
            }
            self.draft_label_groups[href] = group
            kind = "update" if before is not None else "create"
            changes = {"name": {"before": None if before is None else before["name"], "after": name}}
            return self._write(
                f"label_group.{kind}",
                USER,
                [resource_change(kind, {"label_group": {"href": href, "name": name}}, changes)],
                action=api_action("PUT" if before else "POST", href, 204 if before else 201),
            )

    def delete_label_group(self, href: str) -> Json:
        """Delete a draft label group (`label_group.delete`)."""
        with self._lock:
            group = self.draft_label_groups.pop(href)
            resource = {"label_group": {"href": href, "name": group["name"]}}
            return self._write(
                "label_group.delete",
                USER,
                [resource_change("delete", resource, {})],
                action=api_action("DELETE", href, 204),
            )

    def provision(self) -> Json:
        """Provision the draft: it becomes the active version (`sec_policy.create`)."""
        with self._lock:
            self.label_groups = {
                _active(href): {
                    **group,
                    "href": _active(href),
                    "sub_groups": [{"href": _active(sub["href"])} for sub in group["sub_groups"]],
                }
                for href, group in self.draft_label_groups.items()
            }
            version = f"/orgs/{self.org_id}/sec_policy/{len(self._event_log.records()) + 1}"
            return self._write(
                "sec_policy.create",
                USER,
                [resource_change("create", {"sec_policy": {"href": version}}, {})],
                action=api_action("POST", f"/orgs/{self.org_id}/sec_policy", 201),
            )

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


def _active(href: str) -> str:
    return href.replace("/sec_policy/draft/", "/sec_policy/active/")
