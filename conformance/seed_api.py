"""Seed a tenant for schemathesis (conformance/run.sh, suite api): users and a
group through SCIM, so the host API has something to find.

    python3 conformance/seed_api.py SCIM_BASE TOKEN
"""

import json
import sys
import urllib.request


def post(base: str, token: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/scim+json"},
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)


def main() -> None:
    base, token = sys.argv[1], sys.argv[2]
    ids = [
        post(base, token, "/Users", {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"api{n}@example.com",
            "emails": [{"value": f"api{n}@example.com", "primary": True}],
            "name": {"givenName": f"Api{n}", "familyName": "Seed"},
        })["id"]
        for n in range(5)
    ]
    post(base, token, "/Groups", {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Api Seed",
        "members": [{"value": i} for i in ids],
    })


if __name__ == "__main__":
    main()
