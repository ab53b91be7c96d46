# The Cadenza processes (worker, API, migrations) for temporal/docker-compose.yml.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# Workflow code pre-bundled for a fast production worker start (workers/main.ts picks it up).
RUN npx tsx scripts/build-workflows.ts
# Production unless told otherwise: the API then needs an external issuer (CADENZA_AUTH_JWKS_URL, _ISSUER,
# _AUDIENCE) and refuses the development one. The compose file's local stack says development explicitly.
ENV NODE_ENV=production CADENZA_ENV=production
