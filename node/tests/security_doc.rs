//! The role table in `docs/SECURITY.md` equals the code's `METHOD_ROLES`, and every RPC in the
//! proto descriptors has a role: a new RPC without one fails here.

use std::collections::BTreeMap;

use prost::Message;
use tally_node::grpc::auth::{Role, METHOD_ROLES};

fn code_table() -> BTreeMap<String, String> {
    METHOD_ROLES
        .iter()
        .map(|(path, role)| {
            (
                path.trim_start_matches('/').to_string(),
                role.name().to_string(),
            )
        })
        .collect()
}

/// Rows of the `| RPC | role | notes |` table under `## Ledger (gRPC)`.
fn doc_table() -> BTreeMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/SECURITY.md");
    let text = std::fs::read_to_string(path).expect("docs/SECURITY.md");
    let section = text
        .split("\n## ")
        .find(|section| section.starts_with("Ledger (gRPC)"))
        .expect("a `## Ledger (gRPC)` section");
    let mut rows = BTreeMap::new();
    let mut in_table = false;
    for line in section.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().trim_matches('`'))
            .collect();
        if cells.first() == Some(&"RPC") && cells.get(1) == Some(&"role") {
            in_table = true;
            continue;
        }
        if !in_table || cells.first().is_some_and(|cell| cell.starts_with("---")) {
            continue;
        }
        if !line.trim_start().starts_with('|') {
            break;
        }
        let previous = rows.insert(cells[0].to_string(), cells[1].to_string());
        assert!(previous.is_none(), "{} is listed twice", cells[0]);
    }
    rows
}

fn proto_methods() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(tally_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut methods = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                methods.push(format!(
                    "{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    methods
}

#[test]
fn doc_table_matches_code() {
    assert_eq!(
        doc_table(),
        code_table(),
        "docs/SECURITY.md and METHOD_ROLES differ"
    );
}

#[test]
fn every_rpc_in_the_protos_has_a_role() {
    let table = code_table();
    let methods = proto_methods();
    assert!(methods.len() >= 18, "{methods:?}");
    for method in &methods {
        assert!(
            table.contains_key(method),
            "{method} has no role in METHOD_ROLES"
        );
    }
    for method in table.keys() {
        assert!(
            methods.contains(method),
            "METHOD_ROLES lists {method}, which no proto defines"
        );
    }
    let roles: Vec<Role> = METHOD_ROLES.iter().map(|(_, role)| *role).collect();
    for role in Role::ALL {
        assert!(roles.contains(&role), "no method needs {role}");
    }
}
