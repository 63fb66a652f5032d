# deployer's image: the GitHub Action runs it (action.yml), GitLab jobs use it as their image.
# Build: docker build -t ghcr.io/deployer-project/deployer:0.1.0 .

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Release profile: opt-level z, thin LTO, stripped (Cargo.toml) → about 10 MB.
RUN cargo build --release --locked

FROM debian:bookworm-slim
# ca-certificates for AWS/GitHub/GitLab over TLS. No git: in CI the commit, branch and repository
# come from GITHUB_*/CI_* variables (git and the Perl it pulls in would triple the image).
# /bin/sh is kept on purpose: GitLab's Docker executor runs job scripts through a shell.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 && useradd --uid 10001 --create-home deployer
COPY --from=build /src/target/release/deployer /usr/local/bin/deployer
LABEL org.opencontainers.image.title="deployer" \
      org.opencontainers.image.description="Build, push and roll an Amazon ECS service; prove it healthy; roll back with the reason" \
      org.opencontainers.image.source="https://github.com/deployer-project/deployer" \
      org.opencontainers.image.licenses="MIT"
# GitHub runs Docker actions as root (it mounts root-owned workspace and file-command paths), so
# the image does not switch users; GitLab jobs and laptops can run it as `deployer` (uid 10001)
# with `--user 10001` or `image: {name: …, docker: {user: "10001"}}`.
ENTRYPOINT ["/usr/local/bin/deployer"]
