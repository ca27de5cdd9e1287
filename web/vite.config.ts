import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

// The API server to proxy to in `npm run dev` (the production build is served by aezen itself).
const api = process.env.AEZEN_API ?? "http://127.0.0.1:3900";

export default defineConfig({
  base: "/",
  plugins: [preact({ devToolsEnabled: false, prefreshEnabled: true })],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // No inline <script> and no data: module preload polyfill: the CSP allows only 'self'.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: true,
  },
  server: {
    port: 5173,
    strictPort: true,
    proxy: {
      "/api": { target: api, changeOrigin: false },
      "/socket.io": { target: api, ws: true, changeOrigin: false },
    },
  },
});
