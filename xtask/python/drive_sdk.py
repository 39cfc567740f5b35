"""Drives every endpoint of a running vMCP through the Python client generated from openapi.yaml.

Usage: python drive_sdk.py BASE_URL FIXTURE_BINARY
(the generated package `vmcp_client` on PYTHONPATH; the fixture MCP server backs the operations)
"""

import sys
import time

from vmcp_client import Client
from vmcp_client.api.mcp_servers import (
    connect_server,
    create_server,
    delete_server,
    disconnect_server,
    get_server,
    list_servers,
    server_logs,
    update_server,
)
from vmcp_client.api.vmcp_operations import (
    call_tool,
    get_prompt,
    list_prompts,
    list_resources,
    list_tools,
    read_resource,
)
from vmcp_client.api.stats import metrics
from vmcp_client.api.stats import stats as stats_api
from vmcp_client.api.system import health
from vmcp_client.api.vmcps import (
    create_vmcp,
    delete_vmcp,
    export_vmcp,
    get_vmcp,
    import_vmcp,
    list_vmcps,
    update_vmcp,
)
from vmcp_client.models import (
    ConnectResponse,
    DisconnectResponse,
    ErrorBody,
    PromptGetRequest,
    PromptList,
    PromptResult,
    ResourceContents,
    ResourceList,
    ResourceReadRequest,
    ServerLogs,
    ToolCallRequest,
    ToolList,
    ToolResult,
    McpServer,
    McpServerInput,
    ServerStatus,
    StatsResponse,
    TransportType,
    Vmcp,
    VmcpExport,
    VmcpImport,
    VmcpInput,
)

calls = 0


def expect(response, status, model):
    global calls
    calls += 1
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, model), (type(response.parsed), response.content)
    return response.parsed


def drive_operations(c, fixture):
    """Connections and the vMCP operations, against the fixture MCP server."""
    server = expect(
        create_server.sync_detailed(
            client=c,
            body=McpServerInput.from_dict(
                {"name": "fixture", "transport_type": "stdio", "config": {"command": fixture, "args": ["stdio"]}}
            ),
        ),
        201,
        McpServer,
    )
    sid = server.server_id
    connected = expect(connect_server.sync_detailed(sid, client=c), 200, ConnectResponse)
    assert "echo" in connected.capabilities.tools, connected
    assert expect(get_server.sync_detailed(sid, client=c), 200, McpServer).status == ServerStatus.CONNECTED
    expect(server_logs.sync_detailed(sid, client=c), 200, ServerLogs)
    vmcp = expect(
        create_vmcp.sync_detailed(
            client=c, body=VmcpInput.from_dict({"name": "ops", "mcp_servers": [{"server_id": sid}]})
        ),
        201,
        Vmcp,
    )
    vid = vmcp.vmcp_id
    tools = expect(list_tools.sync_detailed(vid, client=c), 200, ToolList)
    assert "fixture.echo" in [t["name"] for t in tools.tools], tools
    result = expect(
        call_tool.sync_detailed(
            vid, client=c, body=ToolCallRequest.from_dict({"name": "fixture.echo", "arguments": {"text": "sdk"}})
        ),
        200,
        ToolResult,
    )
    assert result.content[0]["text"] == "sdk", result
    err = expect(
        call_tool.sync_detailed(vid, client=c, body=ToolCallRequest.from_dict({"name": "nope"})), 404, ErrorBody
    )
    resources = expect(list_resources.sync_detailed(vid, client=c), 200, ResourceList)
    assert resources.resource_templates, resources
    contents = expect(
        read_resource.sync_detailed(vid, client=c, body=ResourceReadRequest.from_dict({"uri": "test://static-text"})),
        200,
        ResourceContents,
    )
    assert "static text" in contents.contents[0]["text"], contents
    prompts = expect(list_prompts.sync_detailed(vid, client=c), 200, PromptList)
    assert "fixture.greeting" in [p["name"] for p in prompts.prompts], prompts
    rendered = expect(
        get_prompt.sync_detailed(
            vid, client=c, body=PromptGetRequest.from_dict({"name": "fixture.greeting", "arguments": {"who": "SDK"}})
        ),
        200,
        PromptResult,
    )
    assert rendered.messages[0]["content"]["text"] == "Hello, SDK!", rendered
    # The operations above are in the log (written in the background, so wait for them).
    deadline = time.time() + 10
    while True:
        page = expect(stats_api.sync_detailed(client=c, vmcp_id=vid, method="tools/call"), 200, StatsResponse)
        if page.stats.total_logs == 2 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert page.stats.total_logs == 2, page
    assert page.stats.failed == 1, page
    assert page.pagination.total_items == 2, page
    assert {log.target for log in page.logs} == {"fixture.echo", "nope"}, page
    err = expect(stats_api.sync_detailed(client=c, page_size=101), 400, ErrorBody)
    assert "page_size" in err.detail, err
    expect(metrics.sync_detailed(client=c), 200, object)
    expect(disconnect_server.sync_detailed(sid, client=c), 200, DisconnectResponse)
    expect(delete_vmcp.sync_detailed(vid, client=c), 200, object)
    expect(delete_server.sync_detailed(sid, client=c), 200, object)


def main(base, fixture):
    c = Client(base_url=base, raise_on_unexpected_status=True)
    expect(health.sync_detailed(client=c), 200, object)

    server = expect(
        create_server.sync_detailed(
            client=c,
            body=McpServerInput.from_dict(
                {
                    "name": "filesystem",
                    "description": "Local filesystem access",
                    "transport_type": "stdio",
                    "config": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
                }
            ),
        ),
        201,
        McpServer,
    )
    assert server.transport_type == TransportType.STDIO
    assert server.status == ServerStatus.DISCONNECTED
    sid = server.server_id
    assert [s.server_id for s in expect(list_servers.sync_detailed(client=c), 200, list)] == [sid]
    assert expect(get_server.sync_detailed(sid, client=c), 200, McpServer).name == "filesystem"
    updated = expect(
        update_server.sync_detailed(
            sid,
            client=c,
            body=McpServerInput.from_dict(
                {"name": "fs", "transport_type": "streamable_http", "config": {"url": "http://127.0.0.1:9/mcp"}}
            ),
        ),
        200,
        McpServer,
    )
    assert updated.transport_type == TransportType.STREAMABLE_HTTP
    assert updated.config.url == "http://127.0.0.1:9/mcp"

    vmcp = expect(
        create_vmcp.sync_detailed(
            client=c,
            body=VmcpInput.from_dict(
                {
                    "name": "My vMCP",
                    "description": "Description of the vMCP",
                    "mcp_servers": [{"server_id": sid, "priority": 1}],
                    "active_config": {"api_key": "value"},
                }
            ),
        ),
        201,
        Vmcp,
    )
    vid = vmcp.vmcp_id
    assert vmcp.mcp_servers[0].name == "fs"
    assert vmcp.active_config.to_dict() == {"api_key": "********"}, "secrets are write-only"
    full = expect(export_vmcp.sync_detailed(vid, client=c, include_secrets=True), 200, VmcpExport)
    assert full.active_config.to_dict() == {"api_key": "value"}
    masked = expect(export_vmcp.sync_detailed(vid, client=c), 200, VmcpExport)
    assert masked.active_config.to_dict() == {"api_key": "********"}
    assert [v.vmcp_id for v in expect(list_vmcps.sync_detailed(client=c), 200, list)] == [vid]
    assert expect(get_vmcp.sync_detailed(vid, client=c), 200, Vmcp).name == "My vMCP"
    renamed = expect(
        update_vmcp.sync_detailed(
            vid,
            client=c,
            body=VmcpInput.from_dict({"name": "Renamed", "mcp_servers": [{"server_id": sid}]}),
        ),
        200,
        Vmcp,
    )
    assert renamed.description == ""
    doc = expect(export_vmcp.sync_detailed(vid, client=c), 200, VmcpExport)
    assert doc.mcp_servers[0].config.url == "http://127.0.0.1:9/mcp"

    # Errors come back as ErrorBody.
    err = expect(delete_server.sync_detailed(sid, client=c), 409, ErrorBody)
    assert "Renamed" in err.detail, err.detail
    err = expect(get_vmcp.sync_detailed("vmcp_0000000000000000", client=c), 404, ErrorBody)
    assert err.error == "vMCP not found"
    err = expect(
        create_vmcp.sync_detailed(client=c, body=VmcpInput.from_dict({"name": "Renamed"})), 409, ErrorBody
    )

    expect(delete_vmcp.sync_detailed(vid, client=c), 200, object)
    imported = expect(
        import_vmcp.sync_detailed(client=c, body=VmcpImport.from_dict(doc.to_dict())), 201, Vmcp
    )
    assert imported.mcp_servers[0].server_id == sid, "the identical server is reused"
    expect(delete_vmcp.sync_detailed(imported.vmcp_id, client=c), 200, object)
    expect(delete_server.sync_detailed(sid, client=c), 200, object)
    assert expect(list_servers.sync_detailed(client=c), 200, list) == []
    drive_operations(c, fixture)
    print(f"generated client: {calls} calls over every endpoint, all as documented")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
