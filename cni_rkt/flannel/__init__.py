"""The pieces of the `flannel` plugin (its verbs are in cni_rkt.plugins.flannel).

    subnet_env       flanneld's subnet.env -> SubnetEnv (pure parsing, plus the file read)
    config           the flannel net.d object -> FlannelConfig
    delegate_config  FlannelConfig + SubnetEnv -> the delegate's config (pure) and its bytes
    saved_configs    the rendered delegate configs kept under dataDir for DEL, CHECK and GC
"""
