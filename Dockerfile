# sirenstream image: a static Go binary on distroless.
#   docker build -t sirenstream .
#   docker run --rm sirenstream --help

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Dependencies first, so that code changes do not re-download modules.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# sirenstream version and sirenstream_build_info: docker build
#   --build-arg VERSION=1.4.0 --build-arg COMMIT=$(git rev-parse HEAD) .
ARG VERSION=""
ARG COMMIT=""
RUN go build -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/sirenstream ./cmd/sirenstream \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sirenstream /sirenstream
# /data is the state directory (Badger); owned by the nonroot user so that a
# fresh named volume mounted there is writable.
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/sirenstream"]
CMD ["--help"]
