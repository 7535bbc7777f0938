"""The only layer that imports upstream MDM: locating it, KineMICMDM, the TrainLoop subclass,
checkpoint IO and the --kinemic hooks."""
