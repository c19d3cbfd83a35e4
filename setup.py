"""Install script for acme_metamimic."""

import setuptools

setuptools.setup(
    name='acme_metamimic',
    version='0.1.0',
    description=('MetaMimic: one-shot high-fidelity imitation and task learning '
                 'as an Acme agent.'),
    packages=setuptools.find_packages(include=['acme_metamimic', 'acme_metamimic.*']),
    python_requires='>=3.10,<3.11',
    install_requires=[
        # dm-acme==0.4.0 is installed separately with --no-deps (launch/setup.sh):
        # its own pins conflict with the working set.
        'absl-py',
        'dm-control==1.0.16',
        'dm-env',
        'dm-launchpad==0.5.2',
        'dm-reverb==0.7.0',
        'dm-sonnet==2.0.2',
        'dm-tree',
        'mujoco==3.1.6',
        'numpy==1.23.5',
        'pillow',
        'protobuf==3.19.6',
        'psutil',
        'tensorflow==2.8.4',
        'tensorflow-probability==0.16.0',
        # Demonstration sets are TFDS datasets in RLDS layout. 4.8.3 resolves
        # with the protobuf 3.19.6 pin and its writer runs on TF 2.8 (newer
        # releases were not tried).
        'tensorflow-datasets==4.8.3',
        'tqdm',
        'trfl==1.2.0',
        'matplotlib',
        'imageio',
        # Acme 0.4 imports jax (Reverb adders) and gym (wrappers).
        'jax==0.4.13',
        'jaxlib==0.4.13',
        'gym==0.23.1',
    ],
    extras_require={'test': ['pytest', 'pytest-xdist', 'rlds']},
)
