# tern: a static binary on a distroless base, running as a non-root user.
#   docker build -t tern .
#   docker run --rm tern version
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=none
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/tern ./cmd/tern

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/tern /usr/local/bin/tern
# uid 1001 is the runner user on GitHub-hosted runners, so the Action can
# write the files GitHub hands it (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY).
USER 1001:1001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tern"]
CMD ["serve"]
