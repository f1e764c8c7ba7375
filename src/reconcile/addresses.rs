//! Who ends up with which address when changes arrive together (a complete
//! listing's engine page, a delta round, a SCIM write and the deferred
//! changes it releases). App users are unique by folded email per tenant,
//! and the rules judge that uniqueness on the state *after* the whole set,
//! never change by change: two users who exchange addresses, a rotation, a
//! chain of renames, or a new user taking an address a rename releases are
//! applied together, whatever order the directory listed them in.
//!
//! Pure: the moves the set's plans would make and who holds each address
//! now in, a verdict per move out. `apply` builds the moves from the plans
//! and writes what was accepted.

use std::collections::HashMap;

/// The address effect of one planned change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The app user whose address changes (an existing one, the one a
    /// creation makes, or the one a first match by email adopts).
    pub user: String,
    /// The address it holds before the set (None: a new user).
    pub from: Option<String>,
    /// The address it holds after (None: the user is deleted).
    pub to: Option<String>,
    /// A directory user adopting an app user it matched by email: it claims
    /// the address that user already holds.
    pub adopts: bool,
}

impl Move {
    /// Whether the move asks for an address it does not hold now.
    fn claims(&self) -> Option<&str> {
        match (&self.from, &self.to) {
            (_, Some(to)) if self.adopts => Some(to),
            (from, Some(to)) if from.as_ref() != Some(to) => Some(to),
            _ => None,
        }
    }

    /// Whether the move gives up the address it holds now.
    fn releases(&self) -> Option<&str> {
        match (&self.from, &self.to) {
            (Some(from), to) if !self.adopts && to.as_ref() != Some(from) => Some(from),
            _ => None,
        }
    }
}

/// Who holds an address before the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// An app user this directory links (a user of this directory).
    Here(String),
    /// An app user this directory does not link: another directory's person
    /// (or nobody's any more).
    Elsewhere(String),
}

/// What becomes of one move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// The address stays with another user of this directory at the end of
    /// the set (`holder`), or more than one user of the set asks for it
    /// (`holder` None): the change waits until the address is released.
    Deferred {
        address: String,
        holder: Option<String>,
    },
    /// The address belongs to a person this directory does not link (the
    /// tenant's first directory owns that person): a lasting conflict.
    Conflict {
        address: String,
        holder: String,
    },
}

impl Verdict {
    /// Why a change was not applied, naming the user who holds the address.
    pub fn reason(&self) -> Option<String> {
        match self {
            Verdict::Accepted => None,
            Verdict::Deferred {
                address,
                holder: Some(holder),
            } => Some(format!(
                "waiting for {address}, which app user {holder} of this directory still holds"
            )),
            Verdict::Deferred {
                address,
                holder: None,
            } => Some(format!(
                "{address} is asked for by more than one user of this directory"
            )),
            Verdict::Conflict { address, holder } => Some(format!(
                "the new email {address} belongs to another user (app user {holder})"
            )),
        }
    }
}

/// The verdict on each move (in the order given). Rejections only spread
/// (a user that cannot move keeps its address, which the users that asked
/// for it then cannot have), so the result is the one fixed point reached
/// from "everything accepted", whatever order the moves come in.
pub fn settle(moves: &[Move], holders: &HashMap<String, Holder>) -> Vec<Verdict> {
    let mut claimants: HashMap<&str, usize> = HashMap::new();
    for m in moves {
        if let Some(address) = m.claims() {
            *claimants.entry(address).or_default() += 1;
        }
    }
    // The move of each app user, to see whether a holder leaves.
    let by_user: HashMap<&str, usize> = moves
        .iter()
        .enumerate()
        .filter(|(_, m)| !m.adopts)
        .map(|(i, m)| (m.user.as_str(), i))
        .collect();
    // Which moves are refused: a fixed point, then each refusal's reason is
    // read off the final state (refusals only spread, so the reason that
    // refused a move still holds at the end, and no order picks it).
    let mut verdicts = vec![Verdict::Accepted; moves.len()];
    loop {
        let mut refused = Vec::new();
        for (i, m) in moves.iter().enumerate() {
            if verdicts[i] != Verdict::Accepted {
                continue;
            }
            if let Some(address) = m.claims()
                && judge(m, address, holders, &claimants, &by_user, moves, &verdicts)
                    != Verdict::Accepted
            {
                refused.push(i);
            }
        }
        if refused.is_empty() {
            break;
        }
        for i in refused {
            // A placeholder until the reasons are read below.
            verdicts[i] = Verdict::Deferred {
                address: String::new(),
                holder: None,
            };
        }
    }
    let fixed = verdicts.clone();
    for (i, m) in moves.iter().enumerate() {
        if let (Some(address), false) = (m.claims(), fixed[i] == Verdict::Accepted) {
            verdicts[i] = judge(m, address, holders, &claimants, &by_user, moves, &fixed);
        }
    }
    verdicts
}

fn judge(
    m: &Move,
    address: &str,
    holders: &HashMap<String, Holder>,
    claimants: &HashMap<&str, usize>,
    by_user: &HashMap<&str, usize>,
    moves: &[Move],
    verdicts: &[Verdict],
) -> Verdict {
    let deferred = |holder: Option<&String>| Verdict::Deferred {
        address: address.to_owned(),
        holder: holder.cloned(),
    };
    match holders.get(address) {
        Some(Holder::Elsewhere(holder)) if !m.adopts => {
            return Verdict::Conflict {
                address: address.to_owned(),
                holder: holder.clone(),
            };
        }
        Some(Holder::Here(holder)) if *holder != m.user => {
            // Free at the end only if its holder moves off it in this set.
            let leaves = by_user.get(holder.as_str()).is_some_and(|&j| {
                verdicts[j] == Verdict::Accepted && moves[j].releases() == Some(address)
            });
            if !leaves {
                return deferred(Some(holder));
            }
        }
        _ => {}
    }
    if claimants.get(address).copied().unwrap_or(0) > 1 {
        return deferred(None);
    }
    Verdict::Accepted
}

#[cfg(test)]
mod tests {
    use super::*;
    use itertools::Itertools;
    use rstest::rstest;

    fn rename(user: &str, from: &str, to: &str) -> Move {
        Move {
            user: user.into(),
            from: Some(from.into()),
            to: Some(to.into()),
            adopts: false,
        }
    }

    fn create(user: &str, to: &str) -> Move {
        Move {
            user: user.into(),
            from: None,
            to: Some(to.into()),
            adopts: false,
        }
    }

    fn delete(user: &str, from: &str) -> Move {
        Move {
            user: user.into(),
            from: Some(from.into()),
            to: None,
            adopts: false,
        }
    }

    /// Holders before the set: every (address, user) of this directory.
    fn here(pairs: &[(&str, &str)]) -> HashMap<String, Holder> {
        pairs
            .iter()
            .map(|(a, u)| ((*a).to_owned(), Holder::Here((*u).to_owned())))
            .collect()
    }

    /// Every order of `items`.
    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        items.iter().cloned().permutations(items.len()).collect()
    }

    /// Settle every order of the set; each must give every user the same
    /// verdict. Returns the verdicts by user.
    fn settle_in_every_order(
        moves: &[Move],
        holders: &HashMap<String, Holder>,
    ) -> HashMap<String, Verdict> {
        let mut first: Option<HashMap<String, Verdict>> = None;
        for order in permutations(moves) {
            let verdicts: HashMap<String, Verdict> = order
                .iter()
                .map(|m| m.user.clone())
                .zip(settle(&order, holders))
                .collect();
            match &first {
                None => first = Some(verdicts),
                Some(f) => assert_eq!(f, &verdicts, "order {order:?} changed the result"),
            }
        }
        first.unwrap_or_default()
    }

    fn accepted(verdicts: &HashMap<String, Verdict>) -> Vec<&str> {
        let mut out: Vec<&str> = verdicts
            .iter()
            .filter(|(_, v)| **v == Verdict::Accepted)
            .map(|(u, _)| u.as_str())
            .collect();
        out.sort();
        out
    }

    #[rstest]
    #[case::swap(
        vec![rename("A", "a", "b"), rename("B", "b", "a")],
        &[("a", "A"), ("b", "B")],
        vec!["A", "B"],
    )]
    #[case::rotation(
        vec![rename("A", "a", "b"), rename("B", "b", "c"), rename("C", "c", "a")],
        &[("a", "A"), ("b", "B"), ("c", "C")],
        vec!["A", "B", "C"],
    )]
    #[case::rename_chain(
        vec![rename("A", "a", "x"), rename("B", "b", "a"), rename("C", "c", "b")],
        &[("a", "A"), ("b", "B"), ("c", "C")],
        vec!["A", "B", "C"],
    )]
    #[case::released_address_taken_by_a_new_user(
        vec![rename("A", "a", "x"), create("N", "a")],
        &[("a", "A")],
        vec!["A", "N"],
    )]
    #[case::deleted_user_releases_its_address(
        vec![delete("A", "a"), rename("B", "b", "a")],
        &[("a", "A"), ("b", "B")],
        vec!["A", "B"],
    )]
    #[case::half_a_swap_waits_for_the_other_half(
        vec![rename("A", "a", "b")],
        &[("a", "A"), ("b", "B")],
        vec![],
    )]
    #[case::a_chain_blocked_at_its_head_blocks_the_whole_chain(
        vec![rename("A", "a", "z"), rename("B", "b", "a"), rename("C", "c", "b")],
        &[("a", "A"), ("b", "B"), ("c", "C"), ("z", "Z")],
        vec![],
    )]
    #[case::two_users_asking_for_one_free_address_both_wait(
        vec![create("N", "n"), create("M", "n"), rename("A", "a", "x")],
        &[("a", "A")],
        vec!["A"],
    )]
    #[case::a_swap_beside_an_unrelated_rename(
        vec![rename("A", "a", "b"), rename("B", "b", "a"), rename("C", "c", "d")],
        &[("a", "A"), ("b", "B"), ("c", "C")],
        vec!["A", "B", "C"],
    )]
    fn the_set_is_judged_on_its_final_state_in_every_order(
        #[case] moves: Vec<Move>,
        #[case] holders: &[(&str, &str)],
        #[case] expected: Vec<&str>,
    ) {
        let verdicts = settle_in_every_order(&moves, &here(holders));
        assert_eq!(accepted(&verdicts), expected, "{verdicts:?}");
    }

    #[test]
    fn a_deferred_change_names_the_user_still_holding_the_address() {
        let verdicts = settle(&[rename("A", "a", "b")], &here(&[("a", "A"), ("b", "B")]));
        assert_eq!(
            verdicts,
            vec![Verdict::Deferred {
                address: "b".into(),
                holder: Some("B".into())
            }]
        );
        assert!(verdicts[0].reason().unwrap().contains("app user B"));
    }

    #[test]
    fn an_address_of_another_directorys_person_is_a_conflict_not_a_wait() {
        let holders = HashMap::from([("b".to_owned(), Holder::Elsewhere("P".into()))]);
        let verdicts = settle(&[rename("A", "a", "b")], &holders);
        assert!(matches!(&verdicts[0], Verdict::Conflict { holder, .. } if holder == "P"));
    }

    #[test]
    fn one_user_adopting_another_directorys_person_is_accepted_two_wait() {
        let holders = HashMap::from([("p".to_owned(), Holder::Elsewhere("P".into()))]);
        let adopt = |_n: &str| Move {
            user: "P".into(),
            from: None,
            to: Some("p".into()),
            adopts: true,
        };
        assert_eq!(settle(&[adopt("N")], &holders), vec![Verdict::Accepted]);
        let both = settle(&[adopt("N"), adopt("M")], &holders);
        assert!(both.iter().all(|v| matches!(v, Verdict::Deferred { .. })));
    }
}

/// Any permutation of a set gives every user the same verdict.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A directory of up to 6 users over 8 addresses, each user asking for
    /// one address (or keeping its own), in a shuffled order.
    fn set() -> impl Strategy<Value = (Vec<Move>, HashMap<String, Holder>, Vec<Move>)> {
        (1usize..7)
            .prop_flat_map(|n| {
                (
                    Just(n),
                    prop::collection::vec(0usize..8, n),
                    prop::collection::vec(0usize..8, n),
                )
            })
            .prop_flat_map(|(n, _, wants)| {
                let holders: HashMap<String, Holder> = (0..n)
                    .map(|u| (format!("a{u}"), Holder::Here(format!("U{u}"))))
                    .collect();
                let moves: Vec<Move> = (0..n)
                    .map(|u| Move {
                        user: format!("U{u}"),
                        from: Some(format!("a{u}")),
                        to: Some(format!("a{}", wants[u])),
                        adopts: false,
                    })
                    .collect();
                let shuffled = Just(moves.clone()).prop_shuffle();
                (Just(moves), Just(holders), shuffled)
            })
    }

    proptest! {
        #[test]
        fn any_order_of_a_set_gives_the_same_verdicts((moves, holders, shuffled) in set()) {
            let by_user = |ms: &[Move]| -> HashMap<String, Verdict> {
                ms.iter().map(|m| m.user.clone()).zip(settle(ms, &holders)).collect()
            };
            prop_assert_eq!(by_user(&moves), by_user(&shuffled));
        }

        #[test]
        fn accepted_moves_never_leave_two_users_on_one_address((moves, holders, _s) in set()) {
            let verdicts = settle(&moves, &holders);
            let mut end: HashMap<String, String> = holders
                .iter()
                .filter_map(|(a, h)| match h { Holder::Here(u) => Some((u.clone(), a.clone())), _ => None })
                .collect();
            for (m, v) in moves.iter().zip(&verdicts) {
                if *v == Verdict::Accepted && let Some(to) = &m.to {
                    end.insert(m.user.clone(), to.clone());
                }
            }
            let mut addresses: Vec<&String> = end.values().collect();
            let before = addresses.len();
            addresses.sort();
            addresses.dedup();
            prop_assert_eq!(addresses.len(), before, "{:?} {:?}", moves, verdicts);
        }
    }
}
