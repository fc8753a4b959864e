// Child process for the kill test: writes model versions and switches the current one in a loop.
import { resolveBackend } from '../../src/engine/backends';
import { ModelStore } from '../../src/engine/store/modelStore';
import { buildResUNet, DEFAULT_NETWORK } from '../../src/engine/network/resUNet';

void (async () => {
  await resolveBackend('cpu');
  const store = new ModelStore(process.argv[2]);
  const classes = {
    classes: [
      { index: 0, name: '_background_', color: '#000000' },
      { index: 1, name: 'a', color: '#800000' },
    ],
  };
  const network = { ...DEFAULT_NETWORK, numClasses: 2, stageWidths: [8, 16] };
  if (!store.exists()) await store.createInitial(network, classes, 'cpu');
  const model = buildResUNet(network);
  process.send?.('ready');
  for (;;) {
    const { meta } = { meta: await store.currentMeta() };
    const version = await store.nextVersion();
    await store.writeVersion(
      model,
      { ...meta, version, parent: meta.version },
      {
        version,
        parent: meta.version,
        createdAt: new Date().toISOString(),
        backend: 'cpu',
        accepted: true,
        reason: 'kill test',
      },
    );
    await store.setCurrent(version);
  }
})();
