# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=v1.4.0 --build-arg REVISION=$(git rev-parse HEAD) -t ivrd .
# Run:   docker run -p 8080:8080 -v ivrd-data:/data \
#          -v /etc/ivrd/signing-key.pem:/run/secrets/signing-key.pem:ro \
#          -e CIBA_CLIENT_KEY=/run/secrets/signing-key.pem --env-file ivrd.env ivrd

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The build's version and commit, for `ivrd version`, the start-up log and
# the ivr_build_info metric (.git is not in the build context).
ARG VERSION=devel
ARG REVISION=
# modernc.org/sqlite is pure Go, so the binary is static.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" -o /out/ivrd ./cmd/ivrd \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ivrd /ivrd
COPY --from=build --chown=65532:65532 /out/data /data
ENV IVR_LISTEN=:8080 \
    IVR_DB=/data/ivr.db
USER 65532:65532
EXPOSE 8080
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 CMD ["/ivrd", "healthcheck"]
ENTRYPOINT ["/ivrd", "serve"]
