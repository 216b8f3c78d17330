# syntax=docker/dockerfile:1
# Build: docker build -t ivrd .
# Run:   docker run -p 8080:8080 -v ivrd-data:/data --env-file ivrd.env ivrd

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# modernc.org/sqlite is pure Go, so the binary is static.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ivrd ./cmd/ivrd \
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
