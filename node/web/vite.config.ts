// Builds the clinic web app into dist/, which healsync-node embeds and serves at `/`.
// Output names carry a content hash (cached for a year by the node); the build is
// deterministic so the committed dist/ can be checked against a fresh build.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact', legalComments: 'none' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
    rollupOptions: { output: { manualChunks: undefined } },
  },
});
