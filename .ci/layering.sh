#!/usr/bin/env bash
# ARCHITECTURE.md's table ("may not import"): the rules and the domain import no
# HTTP, SQL, HTTP-client or SCIM wire crate; only store imports sea_orm; scim
# speaks SCIM wire types; and which layer of the crate may import which.
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
check src/web '\b(sea_orm|scim_v2|reqwest)::' "web (the dashboard) renders pages with actix_web and askama; it reads through admin and store, never sea_orm"
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

# The crate's own layers: the edges (scim, pull) call the rules (reconcile),
# which call the store; the domain is the bottom. A path to another layer is
# written `crate::LAYER::…`, so the greps below see every one of them.
check src/reconcile '\bcrate::(scim|pull)\b' "reconcile is called by scim and pull; it never imports them"
check src/store '\bcrate::(scim|reconcile|pull)\b' "store never imports scim, reconcile or pull"
check src/pull '\bcrate::scim\b' "pull hands snapshots to reconcile; it never imports scim"
if hits=$(grep -rnoE '\bcrate::[A-Za-z_][A-Za-z_0-9]*' src/domain | grep -vE ':crate::domain$'); then
  echo "layering: domain imports nothing else of the crate (only crate::domain)"; echo "$hits"; fail=1
fi
# `super::` chains that climb to the crate root (`super::super::scim` from
# src/store/x.rs, `super::pull` from src/reconcile/mod.rs) and `crate::{…}`
# groups would slip past the greps above.
escapes() { # file: lines whose super:: chain reaches the crate root
  local rel=${1#src/}
  rel=${rel%.rs}; rel=${rel%/mod}
  local depth=$(($(tr -cd / <<<"$rel" | wc -c) + 1))
  # Inline modules (`mod tests {` … `}`, rustfmt puts both at column 0) sit
  # one level deeper, so their chains may be one `super` longer.
  awk -v d="$depth" -v f="$1" '
    /^(pub(\([a-z]+\))? )?mod [A-Za-z_0-9]+ \{/ { inner = 1 }
    { line = " " $0; sub(/\/\/.*/, "", line)
      while (match(line, /[^A-Za-z_0-9:](super::)+/)) {
        chain = substr(line, RSTART, RLENGTH)
        if (gsub(/super::/, "", chain) >= d + inner) { print f ":" NR ":" $0; break }
        line = substr(line, RSTART + RLENGTH)
      } }
    /^}/ { inner = 0 }' "$1"
}
for dir in src/domain src/reconcile src/store src/pull; do
  check "$dir" '\bcrate::\{' "one crate:: path per layer, not a crate::{…} group, so the layering checks see it"
  hits=$(find "$dir" -name '*.rs' | sort | while read -r f; do escapes "$f"; done)
  if [ -n "$hits" ]; then
    echo "layering: a super:: chain climbs out of $dir; write crate::… so the layering checks see it"
    echo "$hits"; fail=1
  fi
done

# A circle of imports is the sign a file does two jobs (ARCHITECTURE.md, pull/).
# pull's modules (src/pull/*.rs, and src/pull/fake/ as one) import each other
# one way; `#[cfg(test)]` modules are left out (the connectors' tests use
# the fakes, which build the connectors' settings).
pull_edges() {
  local f from mods
  mods=" $(find src/pull -mindepth 1 -maxdepth 1 \( -name '*.rs' -o -type d \) -not -name mod.rs \
    -printf '%f\n' | sed 's/\.rs$//' | tr '\n' ' ')"
  for f in $(find src/pull -name '*.rs' -not -path src/pull/mod.rs); do
    case "$f" in
      src/pull/fake/*) from=fake; up='(crate::pull|super::super(::super)?)' ;;
      *) from=$(basename "$f" .rs); up='(crate::pull|super(::super)?)' ;;
    esac
    echo "$from $from"
    awk '/^(pub )?mod [A-Za-z_0-9]+ \{/ && cfg_test { skip = 1 }
      { cfg_test = /^#\[cfg\(test\)\]$/ }
      !skip { line = $0; sub(/\/\/.*/, "", line); printf "%s ", line }
      /^}/ { skip = 0 }' "$f" |
      { grep -oE "(^|[^A-Za-z_0-9:])$up::(\{[^}]*\}|[a-z_0-9]+)" || true; } |
      sed -E "s/^.*$up:://" | grep -oE '\b[a-z_][a-z_0-9]*\b' |
      while read -r to; do
        [[ "$to" != "$from" && "$mods" == *" $to "* ]] && echo "$from $to"
      done
  done | sort -u
}
if ! loop=$(pull_edges | tsort 2>&1 >/dev/null) || [ -n "$loop" ]; then
  echo "layering: pull's modules import each other in a circle; split the file that does two jobs"
  echo "$loop"; fail=1
fi

[ "$fail" = 0 ] && echo "layering: ok"
exit "$fail"
