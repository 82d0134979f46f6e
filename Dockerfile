# Spillway: the sources run directly on Node 24 (type stripping); no build step.
#   docker build -t spillway .
#   docker run -p 8080:8080 -p 9464:9464 -v spillway-data:/data spillway          # WAL + DuckDB
FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production \
    SPILLWAY_DATA_DIR=/data \
    HTTP_PORT=8080 \
    METRICS_PORT=9464
COPY package.json package-lock.json ./
# The `node` npm package pins the project's Node for npm scripts on developer machines; the image
# already is Node 24, so the production install skips it.
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund \
    && npm uninstall --no-save node \
    && npm cache clean --force
COPY bin ./bin
COPY src ./src
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 8080 9464
# SIGTERM drains delivery and exits 0; give it `shutdownTimeoutMs` (30 s) before a SIGKILL.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/spillway.js"]
CMD ["serve"]
