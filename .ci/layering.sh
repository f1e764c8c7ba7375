#!/usr/bin/env bash
# STYLE.md "Shape": the rules and the domain import no HTTP, SQL, HTTP-client or
# SCIM wire crate; only store imports sea_orm; scim speaks SCIM wire types.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
check() { # dir pattern message
  if [ -d "$1" ] && hits=$(grep -rnE "$2" "$1"); then
    echo "layering: $3"; echo "$hits"; fail=1
  fi
}
check src/domain '\b(actix_web|sea_orm|reqwest|scim_v2)::' "domain must stay pure"
check src/reconcile '\b(actix_web|sea_orm|reqwest|scim_v2)::' "reconcile must stay pure"
check src/scim '\bsea_orm::' "only store imports sea_orm"
check src/store '\b(actix_web|scim_v2)::' "store speaks neither HTTP nor SCIM"
check src/pull '\b(sea_orm|scim_v2)::' "pull translates provider APIs; no SQL or SCIM types"
for f in $(find src/pull -name '*.rs' -not -path 'src/pull/fake/*'); do
  check "$f" '\bactix_web::' "only the fake providers (src/pull/fake) serve HTTP in pull"
done
for dir in src/domain src/reconcile src/scim src/store; do
  check "$dir" '\breqwest::' "only pull imports an HTTP client"
done
for f in src/*.rs; do
  case "$f" in src/store/*) ;; *) check "$f" '\bsea_orm::' "only store imports sea_orm";; esac
done
# The unit of work (src/reconcile/unit.rs) is the one write path: nothing
# else appends events.
if hits=$(grep -rnE '\bevents::append\b' src --include=*.rs | grep -vE '^src/(reconcile/unit|store/events)\.rs:'); then
  echo "layering: only the unit of work (src/reconcile/unit.rs) appends events"; echo "$hits"; fail=1
fi
[ "$fail" = 0 ] && echo "layering: ok"
exit "$fail"
