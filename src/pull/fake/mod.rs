//! Local stand-ins for the providers' APIs, so tests (and a newcomer, later
//! through `dirsync dev fake-directory`) can watch a pull work without any
//! account. Generated from a seed: the same seed, the same directory.

pub mod graph;

use serde_json::{Value, json};

/// One generated person.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    pub department: String,
    pub title: String,
    pub employee_number: String,
    pub active: bool,
}

impl User {
    /// As Microsoft Graph lists it (`/v1.0/users`, the fields dirsync selects).
    pub fn graph(&self) -> Value {
        json!({
            "id": self.id,
            "userPrincipalName": self.email,
            "mail": self.email,
            "displayName": format!("{} {}", self.given_name, self.family_name),
            "givenName": self.given_name,
            "surname": self.family_name,
            "accountEnabled": self.active,
            "department": self.department,
            "jobTitle": self.title,
            "employeeId": self.employee_number,
        })
    }
}

/// One generated group and its members (indexes into `Directory::users`).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub members: Vec<usize>,
}

impl Group {
    pub fn graph(&self) -> Value {
        json!({
            "id": self.id,
            "displayName": self.name,
            "mailEnabled": false,
            "securityEnabled": true,
            "groupTypes": [],
        })
    }
}

/// A whole generated directory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Directory {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

const GIVEN: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const FAMILY: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
];
const DEPARTMENTS: &[&str] = &["Engineering", "Sales", "Finance", "Support", "Legal"];

/// xorshift64*: deterministic, dependency-free, plenty for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

impl Directory {
    /// `users` people (about 1 in 20 disabled) in `groups` groups; every
    /// user is in one group, chosen by the seed.
    pub fn generate(users: usize, groups: usize, seed: u64) -> Directory {
        let mut rng = Rng(seed.max(1));
        let mut dir = Directory::default();
        for n in 0..users {
            let given = rng.pick(GIVEN);
            let family = rng.pick(FAMILY);
            dir.users.push(User {
                id: format!("{:08x}-0000-4000-8000-{n:012x}", seed as u32),
                given_name: given.to_owned(),
                family_name: family.to_owned(),
                email: format!(
                    "{}.{}.{n}@example.com",
                    given.to_lowercase(),
                    family.to_lowercase()
                ),
                department: rng.pick(DEPARTMENTS).to_owned(),
                title: "Engineer".to_owned(),
                employee_number: format!("E{n:06}"),
                active: !rng.next().is_multiple_of(20),
            });
        }
        for g in 0..groups {
            dir.groups.push(Group {
                id: format!("{:08x}-0000-4000-9000-{g:012x}", seed as u32),
                name: format!("Group {g}"),
                members: Vec::new(),
            });
        }
        if groups > 0 {
            for n in 0..users {
                let g = (rng.next() % groups as u64) as usize;
                dir.groups[g].members.push(n);
            }
        }
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_generates_the_same_directory() {
        assert_eq!(Directory::generate(50, 3, 7), Directory::generate(50, 3, 7));
        assert_ne!(Directory::generate(50, 3, 7), Directory::generate(50, 3, 8));
        let dir = Directory::generate(50, 3, 7);
        assert_eq!(
            dir.groups.iter().map(|g| g.members.len()).sum::<usize>(),
            50
        );
    }
}
