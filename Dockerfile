# tern: a static binary on a distroless base. Two images come from here:
#
#   docker build -t tern .                          # the server: target "server", non-root
#   docker build --target action -t tern-action .   # the GitHub Action's entry: root
#
# GitHub runs a Docker action as root and documents that its image must not
# set USER (it mounts GITHUB_WORKSPACE, GITHUB_OUTPUT and the step summary
# owned by the runner's user, whatever uid that is on a self-hosted or ARC
# runner). The server image runs as distroless's unprivileged "nonroot"
# user. The release workflow publishes both, for linux/amd64 and
# linux/arm64: ghcr.io/ternhq/tern and ghcr.io/ternhq/tern-action.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=none
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/tern ./cmd/tern

# The GitHub Action's image: no USER instruction (GitHub requires root).
FROM gcr.io/distroless/static-debian12 AS action
COPY --from=build /out/tern /usr/local/bin/tern
ENTRYPOINT ["/usr/local/bin/tern"]
CMD ["recover"]

# The server image (the default target), as an unprivileged user.
FROM gcr.io/distroless/static-debian12:nonroot AS server
COPY --from=build /out/tern /usr/local/bin/tern
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tern"]
CMD ["serve"]
