//! The cost of a vMCP's merged tools list: 20 stdio fixture servers with 50 extra tools each
//! (1,280 tools in all). `cached` is what every list costs while nothing changed; `rebuild` is
//! what the first list after a change costs (a catalog refresh, a status change, a vMCP update).
//!
//! Run with `cargo bench -p vmcp-gateway --bench aggregate`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vmcp_domain::{VmcpInput, VmcpServerInput};
use vmcp_gateway::aggregate::VmcpEntry;
use vmcp_gateway::{Gateway, GatewayOptions};
use vmcp_store::testing::TestDatabase;

const SERVERS: usize = 20;
const TOOLS: usize = 50;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = TestDatabase::sqlite();
    let gateway =
        Gateway::start(db.open(), GatewayOptions::default(), rt.handle().clone()).expect("gateway");
    let mut members = Vec::new();
    for i in 0..SERVERS {
        let name = format!("s{i:02}");
        let input: vmcp_domain::McpServerInput = serde_json::from_value(serde_json::json!({
            "name": name, "transport_type": "stdio",
            "config": vmcp_fixture::harness::stdio_config(&name, &["--tools", &TOOLS.to_string()])
        }))
        .unwrap();
        let server = rt.block_on(gateway.create_server(input)).unwrap();
        members.push(VmcpServerInput {
            server_id: server.server_id,
            priority: None,
        });
    }
    let vmcp = rt
        .block_on(gateway.create_vmcp(VmcpInput {
            name: "bench".into(),
            description: None,
            mcp_servers: members,
            active_config: None,
            naming: None,
            tools: None,
            mcp_substitution: None,
            tool_search: None,
            auth: None,
            secret_keys: None,
        }))
        .unwrap();
    let list = rt
        .block_on(gateway.list_tools(&vmcp.vmcp_id, &vmcp_gateway::Caller::default()))
        .unwrap();
    assert!(list.unavailable.is_empty(), "{:?}", list.unavailable);
    let total = list.tools.len();
    assert!(total >= SERVERS * TOOLS, "only {total} tools");
    eprintln!("{SERVERS} servers, {total} tools in the merged list");

    let entry = gateway.vmcp_entry(&vmcp.vmcp_id).unwrap();
    let mut group = c.benchmark_group(format!("tools_list_{SERVERS}x{TOOLS}"));
    group.bench_function("cached", |b| {
        b.iter(|| black_box(entry.aggregate(gateway.supervisor()).tool_list.tools.len()))
    });
    group.bench_function("cached_serialized", |b| {
        b.iter(|| {
            let list = entry.aggregate(gateway.supervisor()).tool_list.clone();
            black_box(serde_json::to_vec(&*list).unwrap().len())
        })
    });
    // Name routing: an exposed name back to its server and original name, as every call does
    // (the last server's last tool, and a name no server has).
    let last = list.tools.last().unwrap()["name"]
        .as_str()
        .expect("tool name")
        .to_string();
    group.bench_function("route_name", |b| {
        b.iter(|| {
            let aggregate = entry.aggregate(gateway.supervisor());
            black_box(aggregate.tool_by_any_name(black_box(&last)).is_some())
        })
    });
    group.bench_function("route_unknown_name", |b| {
        b.iter(|| {
            let aggregate = entry.aggregate(gateway.supervisor());
            black_box(
                aggregate
                    .tool_by_any_name(black_box("nobody.nothing"))
                    .is_none(),
            )
        })
    });
    group.bench_function("rebuild", |b| {
        b.iter(|| {
            let fresh = VmcpEntry::new(entry.vmcp.clone());
            black_box(fresh.aggregate(gateway.supervisor()).tools.len())
        })
    });
    group.finish();
    rt.block_on(gateway.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
