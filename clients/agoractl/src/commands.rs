//! Each command: the Admin calls it makes and what it shows.

use std::{io::Read, time::SystemTime};

use agora_client::{Admin, api, connect_admin};
use anyhow::Context;

use crate::{
    Failure,
    cli::{Cli, Command, Delete, Describe, Drain, Format, Get, Kind, Put, Why},
    config,
    output::{self, Answer, Output, Table},
    render, usage,
};

/// Runs the command line: connects, calls, prints.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let target = config::target(&cli.global)?;
    let timeout = cli.global.timeout;
    let format = cli.global.output;
    let admin = tokio::time::timeout(timeout, connect_admin(&target.server, &target.options))
        .await
        .map_err(|_| {
            Failure::Connect(anyhow::anyhow!(
                "cannot connect to the broker at {} within {timeout:?}",
                target.server
            ))
        })?
        .map_err(|error| match error {
            agora_client::Error::Connect { .. } => Failure::Connect(error.into()),
            other => Failure::Usage(other.into()),
        })?;
    let mut session = Session { admin, timeout };
    match cli.command {
        Command::Get(get) => {
            let (watch, interval) = (get.watch, get.interval);
            repeat(&mut session, format, watch, interval, Watched::Get(get)).await
        }
        Command::Top(top) => {
            let (watch, interval) = (top.watch, top.interval);
            let watched = Watched::Top(top.namespace);
            repeat(&mut session, format, watch, interval, watched).await
        }
        Command::Describe {
            what: Describe::Namespace { name },
        } => show(format, &session.describe_namespace(name).await?),
        Command::Put {
            what: Put::Namespace { file },
        } => show(format, &session.put_namespace(&file).await?),
        Command::Delete {
            what: Delete::Namespace { name },
        } => show(format, &session.delete_namespace(name).await?),
        Command::Drain {
            what:
                Drain::Frontend {
                    name,
                    kill_tasks,
                    undo,
                },
        } => show(format, &session.drain(name, kill_tasks, undo).await?),
        Command::Why(why) => show(format, &session.why(why).await?),
    }
}

fn show(format: Format, output: &Output) -> Result<(), Failure> {
    print!("{}", output.render(format));
    Ok(())
}

/// What `--watch` shows again and again.
enum Watched {
    Get(Get),
    Top(Option<String>),
}

/// Shows `watched` once, or with `watch` again every `interval` whenever
/// it changed, until interrupted (Ctrl-C ends it with 0).
async fn repeat(
    session: &mut Session,
    format: Format,
    watch: bool,
    interval: std::time::Duration,
    watched: Watched,
) -> Result<(), Failure> {
    let mut last = String::new();
    loop {
        let output = match &watched {
            Watched::Get(get) => session.get(get).await?,
            Watched::Top(namespace) => session.top(namespace.clone()).await?,
        };
        let shown = output.render(format);
        if shown != last {
            if watch && !last.is_empty() {
                println!();
            }
            print!("{shown}");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            last = shown;
        }
        if !watch {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// An Admin client and the time each answer may take.
pub struct Session {
    admin: Admin,
    timeout: std::time::Duration,
}

impl Session {
    /// `request` with the deadline set, so a broker that does not answer
    /// ends the call (DEADLINE_EXCEEDED) rather than the operator's
    /// patience.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    async fn get(&mut self, get: &Get) -> Result<Output, Failure> {
        let now = SystemTime::now();
        let namespace = get.namespace.clone().unwrap_or_default();
        let frontend = get.frontend.clone().unwrap_or_default();
        if get.name.is_some() && !matches!(get.kind, Kind::Namespaces | Kind::Frontends) {
            return Err(usage(
                "only namespaces and frontends are listed by name; filter the others with \
                 --namespace and --frontend",
            ));
        }
        Ok(match get.kind {
            Kind::Namespaces => {
                let namespaces = match &get.name {
                    Some(name) => {
                        let request = self.request(api::GetNamespaceRequest { name: name.clone() });
                        vec![self.admin.get_namespace(request).await?.into_inner()]
                    }
                    None => {
                        let request = self.request(api::ListNamespacesRequest {});
                        self.admin
                            .list_namespaces(request)
                            .await?
                            .into_inner()
                            .namespaces
                    }
                };
                let answer = match (&get.name, namespaces.as_slice()) {
                    (Some(_), [one]) => output::json(one),
                    _ => output::json(&api::ListNamespacesResponse {
                        namespaces: namespaces.clone(),
                    }),
                };
                listing(
                    render::namespaces(&namespaces),
                    answer,
                    "No namespaces found.",
                )
            }
            Kind::Frontends => {
                let request = self.request(api::ListFrontendsRequest {});
                let mut answer = self.admin.list_frontends(request).await?.into_inner();
                if let Some(name) = &get.name {
                    answer.frontends.retain(|f| &f.name == name);
                    if answer.frontends.is_empty() {
                        return Err(Failure::Refused(tonic::Status::not_found(format!(
                            "the broker knows no frontend {name:?}"
                        ))));
                    }
                }
                listing(
                    render::frontends(&answer.frontends, now),
                    output::json(&answer),
                    "No frontends found.",
                )
            }
            Kind::Leases => {
                let request = self.request(api::ListAllLeasesRequest {
                    namespace,
                    frontend,
                });
                let answer = self.admin.list_all_leases(request).await?.into_inner();
                listing(
                    render::leases(&answer.leases, now),
                    output::json(&answer),
                    "No leases found.",
                )
            }
            Kind::Tasks => {
                let request = self.request(api::ListAllTasksRequest {
                    namespace,
                    frontend,
                    live_only: get.live,
                });
                let answer = self.admin.list_all_tasks(request).await?.into_inner();
                listing(
                    render::tasks(&answer.tasks, now),
                    output::json(&answer),
                    "No tasks found.",
                )
            }
            Kind::Agents => {
                let request = self.request(api::ListAllAgentsRequest {});
                let answer = self.admin.list_all_agents(request).await?.into_inner();
                listing(
                    render::agents(&answer.agents),
                    output::json(&answer),
                    "No agents found: Agora holds no offer or lease.",
                )
            }
            Kind::Reclaims => {
                let request = self.request(api::ListReclaimsRequest { namespace });
                let answer = self.admin.list_reclaims(request).await?.into_inner();
                listing(
                    render::reclaims(&answer.reclaims, now),
                    output::json(&answer),
                    "No reclaims found.",
                )
            }
            Kind::Waiting => {
                let request = self.request(api::ListWaitingRequestsRequest {
                    namespace,
                    frontend,
                    request_id: String::new(),
                });
                let answer = self
                    .admin
                    .list_waiting_requests(request)
                    .await?
                    .into_inner();
                warn_omitted(answer.omitted);
                listing(
                    render::waiting(&answer.requests, now),
                    output::json(&answer),
                    "No waiting requests.",
                )
            }
        })
    }

    async fn top(&mut self, namespace: Option<String>) -> Result<Output, Failure> {
        let request = self.request(api::GetUsageRequest {
            namespace: namespace.unwrap_or_default(),
        });
        let answer = self.admin.get_usage(request).await?.into_inner();
        Ok(listing(
            render::top(&answer.namespaces),
            output::json(&answer),
            "No namespaces found.",
        ))
    }

    async fn describe_namespace(&mut self, name: String) -> Result<Output, Failure> {
        let request = self.request(api::GetNamespaceRequest { name: name.clone() });
        let namespace = self.admin.get_namespace(request).await?.into_inner();
        let request = self.request(api::GetUsageRequest {
            namespace: name.clone(),
        });
        let usage = self.admin.get_usage(request).await?.into_inner();
        let request = self.request(api::ListWaitingRequestsRequest {
            namespace: name,
            ..Default::default()
        });
        let waiting = self
            .admin
            .list_waiting_requests(request)
            .await?
            .into_inner();
        let text = render::describe_namespace(
            &namespace,
            usage.namespaces.first(),
            &waiting.requests,
            SystemTime::now(),
        );
        Ok(Output::Text {
            text,
            answer: Answer::Fields(vec![
                ("namespace", output::json(&namespace)),
                (
                    "usage",
                    usage.namespaces.first().map_or(Answer::Null, output::json),
                ),
                (
                    "waiting",
                    Answer::List(waiting.requests.iter().map(output::json).collect()),
                ),
            ]),
        })
    }

    async fn put_namespace(&mut self, file: &std::path::Path) -> Result<Output, Failure> {
        let text = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")
                .map_err(Failure::Usage)?;
            text
        } else {
            std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))
                .map_err(Failure::Usage)?
        };
        let namespace: api::Namespace = output::parse(&text)
            .with_context(|| format!("{}", file.display()))
            .map_err(Failure::Usage)?;
        let request = self.request(api::PutNamespaceRequest {
            namespace: Some(namespace),
        });
        let stored = self.admin.put_namespace(request).await?.into_inner();
        Ok(Output::Text {
            text: format!("namespace/{} configured\n", stored.name),
            answer: output::json(&stored),
        })
    }

    async fn delete_namespace(&mut self, name: String) -> Result<Output, Failure> {
        let request = self.request(api::DeleteNamespaceRequest { name: name.clone() });
        let answer = self.admin.delete_namespace(request).await?.into_inner();
        Ok(Output::Text {
            text: format!("namespace/{name} deleted\n"),
            answer: output::json(&answer),
        })
    }

    async fn drain(
        &mut self,
        name: String,
        kill_tasks: bool,
        undo: bool,
    ) -> Result<Output, Failure> {
        let request = self.request(api::DrainFrontendRequest {
            name: name.clone(),
            kill_tasks,
            undo,
        });
        let answer = self.admin.drain_frontend(request).await?.into_inner();
        let text = if undo {
            format!("frontend/{name} drain undone: it may acquire again\n")
        } else {
            let left = answer.frontend.clone().unwrap_or_default();
            let state = if answer.complete {
                "complete".to_owned()
            } else {
                format!(
                    "in progress ({} lease(s), {} live task(s), {} waiting request(s) left)",
                    left.leases, left.live_tasks, left.waiting_requests
                )
            };
            format!(
                "frontend/{name} drained: {} lease(s) released, {} request(s) refused, \
                 {} task(s) killed; drain {state}\n",
                answer.leases_released, answer.requests_refused, answer.tasks_killed
            )
        };
        Ok(Output::Text {
            text,
            answer: output::json(&answer),
        })
    }

    async fn why(&mut self, why: Why) -> Result<Output, Failure> {
        let request = self.request(api::ListWaitingRequestsRequest {
            namespace: why.namespace.clone().unwrap_or_default(),
            frontend: why.frontend.clone().unwrap_or_default(),
            request_id: why.request_id.clone().unwrap_or_default(),
        });
        let answer = self
            .admin
            .list_waiting_requests(request)
            .await?
            .into_inner();
        warn_omitted(answer.omitted);
        let text = if answer.requests.is_empty() {
            let whose = why
                .frontend
                .map_or_else(String::new, |f| format!(" of frontend {f}"));
            format!("No waiting requests{whose}: nothing is pending.\n")
        } else {
            render::why(&answer.requests, SystemTime::now())
        };
        Ok(Output::Text {
            text,
            answer: output::json(&answer),
        })
    }
}

fn listing(table: Table, answer: Answer, empty: &'static str) -> Output {
    Output::Listing {
        table,
        answer,
        empty,
    }
}

/// Says on standard error that the broker left waiting requests out.
fn warn_omitted(omitted: u32) {
    if omitted > 0 {
        eprintln!(
            "warning: {omitted} more waiting request(s) left out by the broker; narrow with \
             --namespace or a frontend"
        );
    }
}
