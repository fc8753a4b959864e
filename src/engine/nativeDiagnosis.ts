// Why a native TensorFlow.js package (tfjs-node, tfjs-node-gpu) did not load, from its loader's error. Pure.

/** Why a native TensorFlow package did not load, in words a person can act on, from its loader's error. */
export function nativeLoadDiagnosis(pkg: string, error: string): { reason: string; fix: string } {
  const gpu = pkg.endsWith('-gpu');
  const install = `npm install ${pkg} in the extension's folder (it downloads libtensorflow at install)`;
  if (/Cannot find module/i.test(error) && error.includes(pkg))
    return {
      reason: `${pkg} is not installed (an optional package)`,
      fix: gpu
        ? `${install}; it needs exactly CUDA 11.2 and cuDNN 8.1 and has no release since 2024: WebGPU is the GPU path that needs neither`
        : install,
    };
  const cuda = /lib(cudart|cublas|cudnn|cufft|curand|cusolver|cusparse)\.so(\.\d+)*/.exec(error);
  if (cuda)
    return {
      reason: `${pkg} is installed but ${cuda[0]} is missing: it was built for CUDA 11.2 and cuDNN 8.1`,
      fix: 'install CUDA 11.2 and cuDNN 8.1 beside your CUDA (and put their lib folders on LD_LIBRARY_PATH), or use WebGPU',
    };
  if (/NODE_MODULE_VERSION|N-API|napi|was compiled against a different Node\.js version/i.test(error))
    return {
      reason: `${pkg}'s binary was built for another Node.js ABI than this one (Node ${process.versions.node}, N-API ${process.versions.napi})`,
      fix: `rebuild it for this Node (npm rebuild ${pkg}); tfjs-node 4.22 ships binaries for N-API 8 and earlier only`,
    };
  if (/libtensorflow/i.test(error))
    return {
      reason: `${pkg} is installed but its libtensorflow is missing (its installer downloads it)`,
      fix: `reinstall ${pkg} on a machine with internet access`,
    };
  return { reason: `${pkg} failed to load: ${error}`, fix: '' };
}
