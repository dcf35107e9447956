"""The smallest environment that configures the function: the required settings alone."""

REQUIRED_ENVIRONMENT = {
    "PCE_URL": "https://pce.example.com:8443",
    "PCE_ORG_ID": "1",
    "PCE_SECRET_ID": "dagsync/pce",
    "PANOS_URL": "https://panorama.example.com",
    "PANOS_SECRET_ID": "dagsync/panos",
    "SNAPSHOT_TABLE": "dagsync-snapshots",
}
