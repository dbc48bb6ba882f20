//! The MCP servers of a profile, as ACP's `session/new` and `session/load`
//! expect them: stdio servers always, HTTP servers only to agents that said
//! they can reach them (`mcpCapabilities.http`); the others are left out
//! with a warning in the log.

use crate::config::McpServerConfig;
use agent_client_protocol::v1::schema::{EnvVariable, HttpHeader, McpServer, McpServerHttp, McpServerStdio};

/// The servers to pass to an agent that can (`http`) or cannot reach HTTP servers.
pub(super) fn servers(configured: &[McpServerConfig], http: bool) -> Vec<McpServer> {
    configured.iter().filter_map(|server| convert(server, http)).collect()
}

fn convert(server: &McpServerConfig, http: bool) -> Option<McpServer> {
    let name = server.name.clone();
    if let Some(command) = &server.command {
        let env = server.env.iter().map(|(k, v)| EnvVariable::new(k.clone(), v.clone())).collect();
        return Some(McpServer::Stdio(McpServerStdio::new(name, command.clone()).args(server.args.clone()).env(env)));
    }
    let url = server.url.clone()?;
    if !http {
        tracing::warn!(server = %name, "the agent cannot use HTTP MCP servers; not passing it");
        return None;
    }
    let headers = server.headers.iter().map(|(k, v)| HttpHeader::new(k.clone(), v.clone())).collect();
    Some(McpServer::Http(McpServerHttp::new(name, url).headers(headers)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_servers_go_only_to_agents_that_can_reach_them() {
        let stdio = McpServerConfig { name: "files".into(), command: Some("mcp-files".into()), ..Default::default() };
        let http =
            McpServerConfig { name: "docs".into(), url: Some("https://mcp.example/".into()), ..Default::default() };
        let configured = [stdio, http];
        assert_eq!(servers(&configured, false).len(), 1);
        let both = servers(&configured, true);
        assert!(
            matches!(&both[..], [McpServer::Stdio(s), McpServer::Http(h)] if s.name == "files" && h.url == "https://mcp.example/")
        );
    }
}
